"""REST API (DRF) for what the pages do, so studies can be scripted; one module per audience:

- ``workers``: crowdworkers, ``/api/work/…`` with their session token in ``X-Worker-Token``;
- ``researchers``: batches, progress, gold games, quizzes, game-round tasks;
- ``admins``: agreement exports, payments, bonuses, MTurk payment.

Views parse input with serializers, call a service or selector and serialize the answer; they
never catch refusals (``config.errors.exception_handler`` answers them).
"""
