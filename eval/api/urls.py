from django.urls import path, re_path

from eval.api import views

# No trailing slashes (DESIGN). Ids are matched loosely here and checked in the
# views, so a malformed id is a JSON 404 rather than Django's HTML one.
urlpatterns = [
    path("tasks", views.tasks_endpoint, name="api-tasks"),
    path("tasks/<str:task_id>/jobs", views.task_jobs_endpoint, name="api-task-jobs"),
    path("tasks/<str:task_id>/review", views.review_endpoint, name="api-review"),
    path("jobs", views.jobs_endpoint, name="api-jobs"),
    path("jobs/<str:job_id>", views.job_endpoint, name="api-job"),
    path("jobs/<str:job_id>/cancel", views.cancel_endpoint, name="api-job-cancel"),
    path("jobs/<str:job_id>/retry", views.retry_endpoint, name="api-job-retry"),
    path("models", views.models_endpoint, name="api-models"),
    path("status", views.status_endpoint, name="api-status"),
    re_path(r"^(?P<rest>.*)$", views.unknown_endpoint),
]
