from django.urls import include, path

from eval.pages import compare, datasets, judgements, results, review_modes, runs, site, tasks, templates, tokens

urlpatterns = [
    path("api/", include("eval.api.urls")),  # first: every open tab polls it every 2 s
    path("", tasks.task_list, name="home"),
    path("tasks/", tasks.task_list, name="task-list"),
    path("tasks/<int:task_id>/", tasks.review, name="review"),
    path("pairs/", review_modes.pairs, name="pairs"),
    path("runs/", runs.runs, name="runs"),
    path("runs/compare", compare.compare, name="runs-compare"),
    path("runs/<int:run_id>/", runs.run_detail, name="run-detail"),
    path("results/", results.results, name="results"),
    path("judgements/", judgements.judgements, name="judgements"),
    path("datasets/", datasets.datasets, name="datasets"),
    path("templates/", templates.templates, name="templates"),
    path("dashboard/", review_modes.dashboard, name="dashboard"),
    path("tokens/", tokens.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke", tokens.revoke_token, name="token-revoke"),
    path("favicon.ico", site.favicon, name="favicon"),
]
