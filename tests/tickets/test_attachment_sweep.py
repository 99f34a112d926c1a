"""Files left behind by a rolled-back upload are swept; files with a row never are."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from tests.conftest import Cast, make_ticket
from tierdesk.core.files import sweep_orphans as attachment_sweep_orphans
from tierdesk.tickets.models import Attachment
from tierdesk.tickets.services import attachment_add, attachment_path


def _age(path: Path, seconds: int) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_orphans_are_swept_and_attached_files_kept(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    kept = attachment_add(actor=cast.alice, ticket=ticket, filename="kept.txt", content=b"k")

    def upload_then_fail() -> None:
        with transaction.atomic():
            attachment_add(actor=cast.alice, ticket=ticket, filename="lost.txt", content=b"l")
            raise RuntimeError("the enclosing work failed after the upload")

    with pytest.raises(RuntimeError):
        upload_then_fail()

    root = Path(settings.ATTACHMENTS_DIR)
    files = [p for p in root.glob("*/*") if p.is_file()]
    assert len(files) == 2  # the rolled-back upload's file is still on disk
    assert Attachment.objects.count() == 1
    part = files[0].parent / "unfinished.part"
    part.write_bytes(b"p")

    assert attachment_sweep_orphans() == 0  # too young: might be an upload in flight
    for path in [*files, part]:
        _age(path, 7200)
    assert attachment_sweep_orphans() == 2
    assert [p for p in root.glob("*/*") if p.is_file()] == [attachment_path(kept)]
