"""Adapters to the outside world: WeCom (企业微信) today; webhook, email and a sandbox later."""
