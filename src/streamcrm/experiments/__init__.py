"""Randomised experiments: readers of real campaigns and the readouts over them.

``hillstrom`` (the MineThatData e-mail experiment), ``uplift_metrics`` (ITT lift, uplift
among the top-ranked, Qini), ``uplift_command`` (``streamcrm uplift``), ``lift`` (the
abandoned-cart campaign's intent-to-treat readout from outcome counters).
"""
