"""WeCom (企业微信) wired into siyu: per-workspace settings, the callback endpoint, contact-way and welcome jobs.

The protocol itself (crypto, API client, callback parsing) lives in `siyu.adapters.wecom`.
"""
