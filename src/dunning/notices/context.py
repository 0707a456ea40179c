"""What a notice shows, assembled from the domain: the business's identity and each invoice's line."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from dunning.domain.account import InvoiceState
from dunning.domain.policy import Policy
from dunning.notices.render import Business, NoticeInvoice


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
