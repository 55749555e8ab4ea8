"""Researcher dashboards of metric runs, their downloads, and admin exports.

Views parse the request and choose a response; numbers come from the stored run results
(``evaluation.tables``, ``evaluation.csv_exports``), figures from ``evaluation.figures`` (cached
per run: results of a done run never change). The dashboard shows the newest run of the
conventions that ``?conventions=`` names (``platform`` by default, or ``paper``), or the run
that ``?run=`` names.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View
from django.views.generic import TemplateView

from evaluation import captions, csv_exports, figures, planning, selectors, services, tables
from evaluation.forms import MetricRunForm
from evaluation.models import MetricRun
from evaluation.stats.metrics import INTERACTION, LANGUAGE, SECTIONS
from games.models import Study
from games.roles import AdminRequiredMixin, ResearcherRequiredMixin, is_admin

FIGURE_CACHE_SECONDS = 24 * 3600
CAPTIONED = (*SECTIONS, "agreement")


def conventions_choice(value: str | None) -> str:
    """A ``conventions`` query value, or the platform's when it names none we know."""
    names = MetricRun.Conventions.values
    return value if value in names else MetricRun.Conventions.PLATFORM


def dashboard_url(study_id: int, conventions: str = MetricRun.Conventions.PLATFORM) -> str:
    """The dashboard of a study, showing runs of ``conventions`` (no query for the platform's)."""
    url = reverse("evaluation:study", kwargs={"pk": study_id})
    if conventions != MetricRun.Conventions.PLATFORM:
        url += "?" + urlencode({"conventions": conventions})
    return url


def _done_run(run_id: int) -> MetricRun:
    run = get_object_or_404(MetricRun.objects.select_related("study"), pk=run_id)
    if run.status != MetricRun.Status.DONE or not run.results:
        raise Http404("this metric run has no results (yet)")
    return run


def _download(content: str | bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _slug(run: MetricRun) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in run.study.name)
    suffix = "" if run.conventions == MetricRun.Conventions.PLATFORM else f"-{run.conventions}"
    return f"{safe}-run{run.pk}{suffix}"


class IndexView(ResearcherRequiredMixin, TemplateView):
    template_name = "evaluation/index.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(overviews=selectors.study_overviews(), **kwargs)


class StudyDashboardView(ResearcherRequiredMixin, TemplateView):
    template_name = "evaluation/dashboard.html"

    def get_context_data(self, **kwargs):
        study = get_object_or_404(Study, pk=self.kwargs["pk"])
        requested = self.request.GET.get("run")
        conventions = conventions_choice(self.request.GET.get("conventions"))
        if requested and requested.isdigit():
            run = MetricRun.objects.filter(
                study=study, pk=int(requested), status=MetricRun.Status.DONE
            ).first()
            conventions = run.conventions if run is not None else conventions
            query = f"run={requested}&"
        else:
            run = selectors.latest_run(study, conventions=conventions)
            query = (
                ""
                if conventions == MetricRun.Conventions.PLATFORM
                else (f"conventions={conventions}&")
            )
        stamp = selectors.data_stamp(study)
        context = {
            "study": study,
            "simulation": planning.simulation_summary(study),
            "planning": planning.cost_planning(study),
            "run": run,
            "active": selectors.active_run(study),
            "history": selectors.study_runs(study),
            "form": MetricRunForm(initial={"conventions": conventions}),
            "conventions": conventions,
            "conventions_label": MetricRun.Conventions(conventions).label,
            "conventions_toggle": [
                {"name": value, "label": label, "current": value == conventions}
                for value, label in MetricRun.Conventions.choices
            ],
            "other_conventions_run": run is None and selectors.latest_run(study) is not None,
            "query": query,
            "stamp": stamp,
            "stale": run is not None and run.data_stamp != stamp,
            "is_admin": is_admin(self.request.user),
            "normalize": self.request.GET.get("normalize", "total"),
        }
        if context["normalize"] not in figures.NORMALIZATIONS:
            context["normalize"] = "total"
        if run is not None:
            results = run.results
            turn_header, turn_rows = tables.turn_level_table(results)
            panels = tables.decoder_panels(results)
            context.update(
                results=results,
                interaction=[tables.pivot(results, m) for m in INTERACTION],
                turn_header=turn_header,
                turn_rows=turn_rows,
                decoder_panels=panels,
                language=[tables.pivot(results, m) for m in LANGUAGE],
                sim_label=tables.sim_label(results),
                sim_range=tables.SIM_RANGE,
                confidence_label=captions.confidence_label(results),
                run_caption=captions.conventions_caption(results),
                captions={s: captions.conventions_caption(results, s) for s in CAPTIONED},
                agreement=results.get("agreement", []),
            )
        return super().get_context_data(**context, **kwargs)


class StartRunView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        form = MetricRunForm(request.POST)
        if not form.is_valid():
            return _invalid(request, study, form)
        run, created = services.request_metric_run(study, user=request.user, **form.cleaned_data)
        if created:
            messages.success(request, f"Metric run {run.pk} started.")
        else:
            messages.info(request, f"The same metric run ({run.pk}) is already under way.")
        return redirect(dashboard_url(study.pk, run.conventions))


def _invalid(request, study: Study, form: MetricRunForm):
    errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
    messages.error(request, f"Metric run not started: {errors}")
    return redirect("evaluation:study", pk=study.pk)


class RunProgressView(ResearcherRequiredMixin, View):
    """What a page polling a run needs: status, progress (0–1), message, where to go next."""

    def get(self, request, run_id: int):
        run = get_object_or_404(MetricRun, pk=run_id)
        return JsonResponse(
            {
                "run": run.pk,
                "status": run.status,
                "progress": run.progress,
                "message": run.message,
                "error": run.error,
                "dashboard": dashboard_url(run.study_id, run.conventions),
            }
        )


class SectionCSVView(ResearcherRequiredMixin, View):
    def get(self, request, run_id: int, section: str):
        run = _done_run(run_id)
        if section not in SECTIONS and section != "decoder_summary":
            raise Http404("unknown table")
        if section == "decoder_summary":
            content = csv_exports.decoder_summary_csv(run.results)
        else:
            content = csv_exports.section_csv(run.results, section)
        content = csv_exports.explain_if_empty(content, section)
        return _download(content, f"{_slug(run)}-{section}.csv", "text/csv; charset=utf-8")


class SectionFigureView(ResearcherRequiredMixin, View):
    def get(self, request, run_id: int, section: str, fmt: str):
        run = _done_run(run_id)
        if section not in SECTIONS or fmt not in figures.FORMATS:
            raise Http404("unknown figure")
        normalize = request.GET.get("normalize", "total")
        if normalize not in figures.NORMALIZATIONS:
            normalize = "total"
        key = f"evaluation:figure:{run.pk}:{section}:{fmt}:{normalize}"
        content = cache.get(key)
        if content is None:
            content = figures.render(figures.section_figure(run.results, section, normalize), fmt)
            cache.set(key, content, FIGURE_CACHE_SECONDS)
        response = HttpResponse(content, content_type=figures.FORMATS[fmt])
        if request.GET.get("download"):
            response["Content-Disposition"] = f'attachment; filename="{_slug(run)}-{section}.{fmt}"'
        return response


class ExportsView(AdminRequiredMixin, TemplateView):
    template_name = "evaluation/exports.html"

    def get_context_data(self, **kwargs):
        study = get_object_or_404(Study, pk=self.kwargs["pk"])
        runs = MetricRun.objects.filter(study=study, status=MetricRun.Status.DONE)
        return super().get_context_data(study=study, runs=runs[:20], **kwargs)


EXPORTS = {
    "agreement.csv": ("text/csv; charset=utf-8", csv_exports.agreement_csv),
    "agreement_pairs.csv": ("text/csv; charset=utf-8", csv_exports.agreement_pairs_csv),
    "metrics.csv": ("text/csv; charset=utf-8", csv_exports.all_metrics_csv),
}


class ExportView(AdminRequiredMixin, View):
    """Admin exports of a run; worker identities appear only as keyed hashes."""

    def get(self, request, run_id: int, name: str):
        run = _done_run(run_id)
        if name == "agreement.json":
            body = {
                "study": run.results["study"],
                "run": run.pk,
                "parameters": run.results["parameters"],
                "agreement": run.results.get("agreement", []),
            }
            if not body["agreement"]:
                body["empty_reason"] = csv_exports.empty_reason(name)
            return _download(
                json.dumps(body, indent=2, allow_nan=False),
                f"{_slug(run)}-agreement.json",
                "application/json",
            )
        if name in EXPORTS:
            content_type, build = EXPORTS[name]
            content = csv_exports.explain_if_empty(build(run.results), name)
            return _download(content, f"{_slug(run)}-{name}", content_type)
        if name.endswith(".csv") and name[:-4] in SECTIONS:
            content = csv_exports.explain_if_empty(
                csv_exports.section_csv(run.results, name[:-4]), name
            )
            return _download(content, f"{_slug(run)}-{name}", "text/csv; charset=utf-8")
        raise Http404("unknown export")
