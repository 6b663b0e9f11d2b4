"""Identity in the API: who may call it (users and their access keys), who is calling (HTTP
Basic, OCP's AK/SK signature, a console session with its CSRF token), the throttle on failed
logins, and the signer a client uses. The engine knows only the creator name a task records;
no module outside ``api`` reads these tables.

No re-exports: import each module by its own name.
"""
