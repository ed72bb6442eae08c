from django.contrib import admin
from django.urls import include, path

from eval import health
from eval.metrics.views import metrics_view

handler400 = "eval.pages.site.bad_request"  # the site's page; a refused query string says why
handler403 = "eval.pages.site.permission_denied"  # the site's page, logged as one INFO line

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("eval.urls")),
]
