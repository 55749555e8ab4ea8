"""Pages and API of the annotation app (mounted at ``/annotation/``)."""

from django.urls import path

from . import api, preview, researcher_views, views

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
    path("api/work/", api.WorkState.as_view(), name="api-work"),
    path("api/work/next/", api.WorkNext.as_view(), name="api-work-next"),
    path("api/work/answer/", api.WorkAnswer.as_view(), name="api-work-answer"),
    path("api/work/submit/", api.WorkSubmit.as_view(), name="api-work-submit"),
    path("api/work/complete/", api.WorkComplete.as_view(), name="api-work-complete"),
    path("api/batches/", api.BatchList.as_view(), name="api-batches"),
    path("api/batches/<int:pk>/", api.BatchDetail.as_view(), name="api-batch"),
    path("api/batches/<int:pk>/gold/", api.BatchGold.as_view(), name="api-batch-gold"),
    path("api/batches/<int:pk>/agreement/", api.BatchAgreement.as_view(), name="api-agreement"),
    path("api/quizzes/", api.QuizList.as_view(), name="api-quizzes"),
    path("api/game-tasks/", api.GameTaskCreate.as_view(), name="api-game-tasks"),
    path("api/payments/", api.Payments.as_view(), name="api-payments"),
    path("api/bonuses/", api.BonusCreate.as_view(), name="api-bonuses"),
    path("api/sessions/<int:pk>/pay/", api.SessionPay.as_view(), name="api-session-pay"),
]
