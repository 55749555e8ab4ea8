"""Pages and API of the annotation app (mounted at ``/annotation/``)."""

from django.urls import path

from . import preview, researcher_views, views
from .api import admins, researchers, workers

app_name = "annotation"

urlpatterns = [
    # crowdworkers
    path("prolific/<str:key>/", views.prolific_arrival, name="prolific"),
    path("mturk/<str:key>/", views.mturk_arrival, name="mturk"),
    path("refused/", views.arrival_refused, name="arrival-refused"),
    path("w/<str:token>/", views.entry, name="entry"),
    path("w/<str:token>/consent/", views.consent, name="consent"),
    path("w/<str:token>/guidelines/", views.guidelines, name="guidelines"),
    path("w/<str:token>/quiz/", views.quiz, name="quiz"),
    path("w/<str:token>/survey/", views.survey, name="survey"),
    # researchers and admins
    path("", researcher_views.batch_list, name="batches"),
    path("batches/<int:pk>/", researcher_views.batch_detail, name="batch-detail"),
    path("game-tasks/", researcher_views.game_tasks, name="game-tasks"),
    path("game-tasks/<int:pk>/", researcher_views.game_task_detail, name="game-task"),
    path("tasks/<int:pk>/preview/<str:step>/", preview.preview, name="preview"),
    path("payments/", views.payments, name="payments"),
    path("payments/sessions/<int:pk>/pay/", views.pay_session, name="pay-session"),
    path("workers/<int:pk>/platform-id/", views.reveal_platform_id, name="reveal-platform-id"),
    # API
    path("api/work/", workers.WorkState.as_view(), name="api-work"),
    path("api/work/next/", workers.WorkNext.as_view(), name="api-work-next"),
    path("api/work/answer/", workers.WorkAnswer.as_view(), name="api-work-answer"),
    path("api/work/submit/", workers.WorkSubmit.as_view(), name="api-work-submit"),
    path("api/work/complete/", workers.WorkComplete.as_view(), name="api-work-complete"),
    path("api/batches/", researchers.BatchList.as_view(), name="api-batches"),
    path("api/batches/<int:pk>/", researchers.BatchDetail.as_view(), name="api-batch"),
    path("api/batches/<int:pk>/gold/", researchers.BatchGold.as_view(), name="api-batch-gold"),
    path("api/batches/<int:pk>/agreement/", admins.BatchAgreement.as_view(), name="api-agreement"),
    path("api/quizzes/", researchers.QuizList.as_view(), name="api-quizzes"),
    path("api/game-tasks/", researchers.GameTaskCreate.as_view(), name="api-game-tasks"),
    path("api/payments/", admins.Payments.as_view(), name="api-payments"),
    path("api/bonuses/", admins.BonusCreate.as_view(), name="api-bonuses"),
    path("api/sessions/<int:pk>/pay/", admins.SessionPay.as_view(), name="api-session-pay"),
]
