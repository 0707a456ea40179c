"""What a notice shows, assembled from the domain: the business's identity and each invoice's line."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from dunning.domain.account import InvoiceState
from dunning.domain.agreements import AgreementNotice
from dunning.domain.plans import InstalmentStanding
from dunning.domain.policy import Policy
from dunning.notices.render import AgreedInstalment, Agreement, Business, NoticeInvoice


def business_of(policy: Policy) -> Business:
    """The policy's business identity as its notices show it: every field of Business, as configured."""
    identity = policy.business
    return Business(**{field.name: getattr(identity, field.name) for field in fields(Business)})


def notice_invoice(invoice: InvoiceState, today: date) -> NoticeInvoice:
    """An invoice as a notice (and an invoice copy) shows it on `today`."""
    return NoticeInvoice(
        invoice_id=invoice.invoice_id,
        reference=invoice.reference,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        outstanding=invoice.outstanding,
        currency=invoice.currency,
        days_overdue=(today - invoice.due_on).days,
        amount=invoice.amount,
        paid=invoice.amount - invoice.outstanding,
        terms=invoice.terms,
    )


def agreement_terms(notice: AgreementNotice) -> Agreement:
    """What an agreement's email shows of it (render.Agreement)."""

    def shown(each: InstalmentStanding) -> AgreedInstalment:
        return AgreedInstalment(each.instalment.due_on, each.instalment.amount, each.paid)

    return Agreement(
        kind=notice.kind,
        agreed_on=notice.agreed_on,
        until=notice.until,
        amount=notice.amount,
        instalments=tuple(shown(each) for each in notice.instalments),
        instalment=shown(notice.instalment) if notice.instalment else None,
        late=notice.late,
    )
