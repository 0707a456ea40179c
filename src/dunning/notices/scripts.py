"""Call scripts (CONTRACT 9): what a collector says on a call task's call, in the customer's language, with
prepared answers to the usual excuses ("the cheque is in the mail", "we never got the invoice", "we can't
pay it all now", "it's with accounts payable", "there's a problem with the goods").

Rendered from `<language>/call_script.txt.j2` like a notice (a business's own template under `templates/`
in the bucket comes first; a language without one falls back to English). The worklist links each task to
its script (services.worklist).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import jinja2
from aws_lambda_powertools import Logger

from dunning.notices.formatting import FALLBACK_LANGUAGE, format_locale, language_of

logger = Logger(service="dunning", child=True)
SCRIPT = "call_script.txt.j2"
# Stages at or after these the script says what comes next if nothing is paid (the ladder's firm end).
FIRM_STAGES = frozenset({"firm_notice", "demand_letter", "final_notice"})


@dataclass(frozen=True)
class CallScriptContext:
    stage: str
    locale: str
    account_id: str
    customer_name: str
    # Where a copy of the invoice goes at once when they say they never got it.
    customer_email: str
    business_name: str
    caller: str  # the collector's name as they introduce themselves
    currency: str
    amount_due: Decimal
    invoice_ids: tuple[str, ...]
    oldest_due_on: date
    days_overdue: int
    # When the collector calls back if a cheque said to be in the mail has not arrived.
    call_back_on: date

    @property
    def firm(self) -> bool:
        return self.stage in FIRM_STAGES


def render_call_script(context: CallScriptContext, template_dirs: Sequence[Path]) -> str:
    """The script in the customer's language (English when there is none in theirs)."""
    from dunning.notices import templating

    env = templating.environment(tuple(template_dirs))
    language = language_of(context.locale)
    try:
        template = env.get_template(f"{language}/{SCRIPT}")
    except jinja2.TemplateNotFound:
        logger.warning("no %r call script (locale %r); showing the %r one", language, context.locale, "en")
        language = FALLBACK_LANGUAGE
        template = env.get_template(f"{language}/{SCRIPT}")
    variables = asdict(context) | {
        "firm": context.firm,
        templating.LOCALE_VARIABLE: format_locale(context.locale, language),
        templating.CATALOG_VARIABLE: language,
        templating.LETTER_VARIABLE: False,
    }
    return templating.plain_spaces(template.render(variables))
