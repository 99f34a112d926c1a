"""The ticket page's forms. They check shape (required, lengths, choices, file type and
size) and hand over to the services, which check the rules; a service's refusal comes back
as a message beside the field it names."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from tierdesk.core.errors import DomainError
from tierdesk.core.models import User
from tierdesk.core.parse import as_id
from tierdesk.core.queries import colleagues, staff_for_organization
from tierdesk.tickets.models import LinkKind, Priority, ResolutionCode, Status, Ticket
from tierdesk.tickets.services import BODY_MAX, TRANSITIONS
from tierdesk.tiers.queries import categories_for_organization, tiers_by_level

NOTE_MAX = 4000
MAX_FILES = 10


def choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    """``form``'s choice field ``name``, typed, to set its choices."""
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    """The IANA time zones a person, organization or calendar may have (region/city, and
    UTC), by name."""
    names = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return [(z, z.replace("_", " ")) for z in names]


class DomainErrors:
    """Mixed into a form: a service's refusal (a DomainError) goes beside the fields it
    names, else above the form."""

    if TYPE_CHECKING:  # provided by forms.Form
        fields: dict[str, forms.Field]

        def add_error(self, field: str | None, error: Any) -> None: ...

    def add_domain_error(self, exc: DomainError) -> None:
        placed = False
        for issue in exc.errors:
            if issue.field in self.fields and not isinstance(
                self.fields[issue.field].widget, forms.HiddenInput
            ):
                self.add_error(issue.field, issue.message)
                placed = True
        if not placed:
            self.add_error(None, exc.detail)


class TicketForm(DomainErrors, forms.Form):
    """A form about one ticket. ``version`` is the version the page showed: a change made
    meanwhile by someone else is refused instead of overwritten."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args: Any, ticket: Ticket, actor: User, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("version", ticket.version)
        super().__init__(*args, **kwargs)
        self.ticket = ticket
        self.actor = actor

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if "version" in self.errors:  # hidden: say it where it can be read
            self.add_error(None, "This form is out of date: reload the page and try again.")
        return cleaned

    def offer_tiers(self, *, higher: bool) -> None:
        """The ``to_tier`` choices: the tiers above the ticket's (nearest first), or below."""
        field = self.fields["to_tier"]
        assert isinstance(field, forms.ChoiceField)
        level = self.ticket.tier.level
        tiers = tiers_by_level() if higher else list(reversed(tiers_by_level()))
        field.choices = [
            (t.code, f"{t.code} — {t.name}")
            for t in tiers
            if (t.level > level if higher else t.level < level)
        ]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; each is checked for type and size."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if len(files) > MAX_FILES:
            raise forms.ValidationError(f"At most {MAX_FILES} files at once.")
        cleaned = [super(MultipleFileField, self).clean(f, initial) for f in files]
        for f in cleaned:
            name = f.name or ""
            ext = name.rpartition(".")[2].lower() if "." in name else ""
            if ext not in settings.ATTACHMENT_ALLOWED_EXTENSIONS:
                raise forms.ValidationError(
                    f"{name}: files of type .{ext or '(none)'} are not accepted."
                )
            if f.size is not None and f.size > settings.ATTACHMENT_MAX_BYTES:
                raise forms.ValidationError(
                    f"{name}: larger than the limit of "
                    f"{settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB."
                )
            if not f.size:
                raise forms.ValidationError(f"{name}: the file is empty.")
        return cleaned


class CommentForm(TicketForm):
    """A public reply or an internal note, with attachments. Comments only add, so they do
    not conflict with other changes; the version is not checked."""

    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=BODY_MAX)
    internal = forms.BooleanField(required=False, label="Internal note (agents only)")
    attachments = MultipleFileField(required=False, label="Attach files")


class DetailsForm(TicketForm):
    priority = forms.ChoiceField(label="Priority")
    category = forms.ChoiceField(label="Category", required=False)
    assignee = forms.ChoiceField(label="Assignee", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ticket: Ticket = kwargs["ticket"]
        kwargs.setdefault("initial", {})
        kwargs["initial"] |= {
            "priority": ticket.priority,
            "category": ticket.category_id or "",
            "assignee": ticket.assignee_id or "",
        }
        super().__init__(*args, **kwargs)
        org = ticket.organization
        self._choice("priority").choices = list(Priority.choices)
        self._choice("category").choices = [("", "None")] + [
            (c.pk, c.name) for c in categories_for_organization(org)
        ]
        self._choice("assignee").choices = [("", "Unassigned")] + [
            (u.pk, f"{u.full_name} ({u.email})") for u in staff_for_organization(org)
        ]

    def _choice(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field


class StatusForm(TicketForm):
    """The status moves open to a ticket that is not being resolved (resolving has its own
    form, it needs a code and a note)."""

    status = forms.ChoiceField(label="Status")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        allowed = TRANSITIONS.get(self.ticket.status, frozenset()) - {Status.RESOLVED}
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(s, Status(s).label) for s in Status.values if s in allowed]


class EscalateForm(TicketForm):
    to_tier = forms.ChoiceField(label="To tier")
    reason = forms.CharField(
        label="Reason", max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )
    handoff_note = forms.CharField(
        label="What was tried",
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What L1 has checked and tried, so that the next tier does not start over.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offer_tiers(higher=True)


class DeEscalateForm(TicketForm):
    to_tier = forms.ChoiceField(label="To tier")
    note = forms.CharField(
        label="Note for the tier below",
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offer_tiers(higher=False)


class ResolveForm(TicketForm):
    resolution_code = forms.ChoiceField(
        label="Resolution",
        choices=[c for c in ResolutionCode.choices if c[0] != ResolutionCode.AUTOMATED],
    )
    resolution_note = forms.CharField(
        label="Resolution note",
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The requester sees it.",
    )


class ReopenForm(TicketForm):
    pass


BULK_MAX = 100


class BulkForm(forms.Form):
    """An action on the selected rows of a queue. Each ticket is then changed on its own,
    with every check a single change has; one refusal does not stop the others. ``people``
    gives the assignees to offer (default: the actor's colleagues), read once."""

    action = forms.ChoiceField(
        label="With the selected",
        choices=[
            ("take", "Assign to me"),
            ("assign", "Assign to…"),
            ("status", "Change status to…"),
            ("escalate", "Escalate to…"),
        ],
    )
    assignee = forms.ChoiceField(label="Assignee", required=False)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "—")]
        + [
            (s, Status(s).label) for s in Status.values if s not in (Status.RESOLVED, Status.CLOSED)
        ],
    )
    to_tier = forms.ChoiceField(label="Tier", required=False)
    reason = forms.CharField(label="Reason", required=False, max_length=NOTE_MAX)
    handoff_note = forms.CharField(label="What was tried", required=False, max_length=NOTE_MAX)

    def __init__(
        self,
        *args: Any,
        actor: User,
        people: Callable[[], list[User]] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("auto_id", "bulk_%s")  # the queue's filters have the same names
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ChoiceField)
        offered = people if people is not None else cache(partial(colleagues, actor))
        # read when the form is shown or checked, not for a live refresh of the rows
        assignee.choices = lambda: [("", "—")] + [(u.pk, u.full_name) for u in offered()]
        tier = self.fields["to_tier"]
        assert isinstance(tier, forms.ChoiceField)
        tier.choices = [("", "—")] + [(t.code, t.code) for t in tiers_by_level()[1:]]
        self.ticket_ids: list[int] = []

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        data = self.cleaned_data
        ids = [i for v in self.data.getlist("tickets") if (i := as_id(v)) is not None]  # type: ignore[attr-defined]
        if not ids:
            self.add_error(None, "Select at least one ticket.")
        elif len(ids) > BULK_MAX:
            self.add_error(None, f"At most {BULK_MAX} tickets at once.")
        self.ticket_ids = list(dict.fromkeys(ids))
        needs = {
            "assign": ["assignee"],
            "status": ["status"],
            "escalate": ["to_tier", "reason", "handoff_note"],
        }.get(data.get("action", ""), [])
        for name in needs:
            if not data.get(name):
                self.add_error(name, "Required for this action.")
        return cleaned


class SavedViewForm(DomainErrors, forms.Form):
    """A name for the queue and filters on screen ("Save these filters as"). The filters
    come along as the page's hidden ``query``; a refusal about them is said above the
    name."""

    name = forms.CharField(label="Save these filters as", max_length=60)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_view_%s")  # the queue's filters are beside it
        super().__init__(*args, **kwargs)

    def add_domain_error(self, exc: DomainError) -> None:
        if not exc.errors:
            self.add_error(None, exc.detail)
        for issue in exc.errors:  # the service's words are phrases: made sentences here
            message = f"{issue.message[:1].upper()}{issue.message[1:]}."
            self.add_error("name" if issue.field == "name" else None, message)


# --- Links and merges (the ticket page's "Link…" and "Merge into…") --------------------

TARGET_HELP = "Its key (ACME-12) or its number in this organization."


class LinkForm(TicketForm):
    kind = forms.ChoiceField(
        label="Link type", choices=LinkKind.choices, initial=LinkKind.RELATED_TO
    )
    target = forms.CharField(label="Ticket", max_length=30, help_text=TARGET_HELP)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "link_%s")  # unique ids beside the page's other forms
        super().__init__(*args, **kwargs)


class MergeForm(TicketForm):
    target = forms.CharField(label="Merge into ticket", max_length=30, help_text=TARGET_HELP)
    public = forms.BooleanField(
        required=False,
        label="Copy as a public reply (that ticket's requester sees it)",
        help_text="Otherwise its description and replies go over as an internal note.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "merge_%s")
        super().__init__(*args, **kwargs)


class UnlinkForm(TicketForm):
    link = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
