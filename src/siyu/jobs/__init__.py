"""A small durable job queue inside our own database: enqueue, claim with a lease, run, retry, cron."""
