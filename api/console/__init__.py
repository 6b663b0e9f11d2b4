"""The web console ``ocptask serve`` shows at ``/``: server-rendered pages (Jinja2) over the same
engine and task-package calls the API makes, with small scripts of our own that call the API
itself under the page's session (``api.auth.console_sessions``). ``pages`` holds the routes."""
