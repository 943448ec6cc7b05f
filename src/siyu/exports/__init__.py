"""Export of filtered contact lists to .xlsx and .csv, streamed so a million rows never sit in memory."""
