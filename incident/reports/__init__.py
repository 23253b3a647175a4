"""Postmortem and trend reports: numbers (metrics), plots (matplotlib) and Jinja2 templates.

Nothing here is imported on the cron path; `incident report …` imports it when asked.
"""
