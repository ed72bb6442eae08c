from django.urls import include, path

from eval import pages

urlpatterns = [
    path("api/", include("eval.api.urls")),  # first: every open tab polls it every 2 s
    path("", pages.task_list, name="home"),
    path("tasks/", pages.task_list, name="task-list"),
    path("tasks/<int:task_id>/", pages.review, name="review"),
    path("pairs/", pages.pairs, name="pairs"),
    path("runs/", pages.runs, name="runs"),
    path("runs/<int:run_id>/", pages.run_detail, name="run-detail"),
    path("results/", pages.results, name="results"),
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("tokens/", pages.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke", pages.revoke_token, name="token-revoke"),
    path("favicon.ico", pages.favicon, name="favicon"),
]
