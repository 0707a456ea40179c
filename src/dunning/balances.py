"""How much is owed: derived from facts (the imported invoice and the payments received), never stored.

The accounting export reports an `amount_paid` and the payments feed reports individual payments. Both
describe the same money, usually with one lagging behind the other, so the paid amount is the larger of
the two: adding them would count a payment twice once the export catches up with the feed.
"""

from __future__ import annotations

from decimal import Decimal

from dunning.models import InvoiceStatus


def paid_amount(reported_paid: Decimal, payments_total: Decimal) -> Decimal:
    return max(reported_paid, payments_total)


def outstanding(
    amount: Decimal, reported_paid: Decimal, payments_total: Decimal, status: InvoiceStatus | str
) -> Decimal:
    """What is still owed on one invoice (zero, never negative, for paid, void or draft invoices)."""
    if InvoiceStatus(status) is not InvoiceStatus.OPEN:
        return Decimal(0)
    return max(amount - paid_amount(reported_paid, payments_total), Decimal(0))


def credit(amount: Decimal, reported_paid: Decimal, payments_total: Decimal) -> Decimal:
    """Money received beyond the invoice amount, kept as a credit on the account."""
    return max(paid_amount(reported_paid, payments_total) - amount, Decimal(0))
