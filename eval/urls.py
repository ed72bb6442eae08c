from django.urls import path

from eval import pages

urlpatterns = [
    path("", pages.home, name="home"),
]
