"""How the site is served: shared and conditional pages, security headers, static assets,
trusted hosts, forgery checks, forwarded headers, rate limits, health and outages, hostile
input, the database underneath, and the site under real gunicorn and nginx, also under load."""
