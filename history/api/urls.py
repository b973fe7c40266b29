from django.urls import path

from history.api.views import HistoryHeadView

urlpatterns = [
    path("history/head", HistoryHeadView.as_view(), name="history-head"),
]
