"""Rows behind the provider-wide rate limit (eval/worker/provider_rate_limit.py).

A provider limited to R requests per minute owns R slot rows. Each slot holds
when it last let a request through; a request takes a slot whose last use is
at least a minute old. So no minute ever sees more than R requests, in every
process on every machine, and a burst of up to R goes through at once.
"""

from django.db import models


class ProviderRateSlot(models.Model):
    provider = models.CharField(max_length=40)
    slot = models.PositiveIntegerField()
    # Epoch seconds (database clock on PostgreSQL) of the last request granted
    # through this slot; 0 = never used.
    granted_at = models.FloatField(default=0.0)

    class Meta:
        app_label = "eval"
        verbose_name = "provider rate-limit slot"
        constraints = [
            models.UniqueConstraint(fields=["provider", "slot"], name="provider_rate_slot_uniq"),
        ]
        indexes = [
            # The grant: the provider's least recently used slot.
            models.Index(fields=["provider", "granted_at"], name="provider_rate_slot_lru_idx"),
        ]

    def __str__(self):
        return f"{self.provider} slot {self.slot}"
