"""The web UI: server-rendered pages at `/` in English and zh-CN, for people in a browser.

It reads the same views with the same permissions as /api (a page asks the /api surface's
own functions, with the same caller), and writes through the same commands. The session is
an /api session token in an HttpOnly cookie (`api.web.session`); every form carries a CSRF
token (`api.web.security`); strings are gettext messages with catalogs per room
(`api.web.i18n`); templates autoescape everything (`api.web.templates`). No other origin is
ever asked for anything: the CSS and the little JavaScript there is are served from here.
"""
