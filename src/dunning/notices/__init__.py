"""Customer notices: rendering a stage's templates and building the raw email that SES sends."""

from dunning.notices.mime import Attachment, build_message
from dunning.notices.render import (
    NoticeContext,
    NoticeInvoice,
    RenderedNotice,
    TemplateNotFound,
    render_notice,
    shipped_template_dir,
)

__all__ = [
    "Attachment",
    "NoticeContext",
    "NoticeInvoice",
    "RenderedNotice",
    "TemplateNotFound",
    "build_message",
    "render_notice",
    "shipped_template_dir",
]
