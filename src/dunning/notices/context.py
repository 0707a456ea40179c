"""What a notice shows, assembled from the domain: the business's identity and each invoice's line."""

from __future__ import annotations

from datetime import date

from dunning.domain.account import InvoiceState
from dunning.domain.policy import Policy
from dunning.notices.render import Business, NoticeInvoice


def business_of(policy: Policy) -> Business:
    identity = policy.business
    return Business(
        name=identity.name,
        address=identity.address,
        reply_to=identity.reply_to,
        payment_instructions=identity.payment_instructions,
        payment_link=identity.payment_link,
        signature=identity.signature,
        logo_url=identity.logo_url,
    )


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
