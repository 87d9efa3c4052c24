"""What readers meet: the request hooks, the consent pages and forms, the cookie firewall, the
Content-Security-Policy and its violation reports, GPC and the embed providers of a request."""
