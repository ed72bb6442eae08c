"""A strict Content-Security-Policy on every response.

Pages load only this site's own scripts and styles: no inline script, no
inline style, no eval, no plugins, no framing. Even if model output or task
text ever reached the page as HTML, no script in it could run. The Django
admin keeps inline styles (some of its widgets use them) but not scripts.
"""

from django.utils.deprecation import MiddlewareMixin

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
ADMIN_POLICY = POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(self, request, response):
        if "Content-Security-Policy" not in response:
            admin = request.path.startswith("/admin/")
            response["Content-Security-Policy"] = ADMIN_POLICY if admin else POLICY
        response.setdefault("Referrer-Policy", "same-origin")
        return response
