"""Who may do what. Researchers and admins are Django users; crowdworkers are not users at all
(they are ``Worker`` rows bound to a session, see ``games.workers``).

- researcher: member of the ``researchers`` group (or an admin);
- admin: a superuser or a member of the ``admins`` group.
"""

from __future__ import annotations

from django.contrib.auth.mixins import UserPassesTestMixin
from rest_framework.permissions import BasePermission

RESEARCHERS_GROUP = "researchers"
ADMINS_GROUP = "admins"


def is_admin(user) -> bool:
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.groups.filter(name=ADMINS_GROUP).exists())
    )


def is_researcher(user) -> bool:
    return bool(
        user.is_authenticated
        and (is_admin(user) or user.groups.filter(name=RESEARCHERS_GROUP).exists())
    )


class ResearcherRequiredMixin(UserPassesTestMixin):
    """Pages for researchers (and admins); anonymous users are sent to the login page."""

    permission_denied_message = "Only researchers may see this page."

    def test_func(self) -> bool:
        return is_researcher(self.request.user)


class AdminRequiredMixin(UserPassesTestMixin):
    """Pages for admins; anonymous users are sent to the login page."""

    permission_denied_message = "Only admins may see this page."

    def test_func(self) -> bool:
        return is_admin(self.request.user)


class IsResearcher(BasePermission):
    message = "Only researchers may do this."

    def has_permission(self, request, view) -> bool:
        return is_researcher(request.user)


class IsAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)
