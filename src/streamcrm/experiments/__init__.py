"""Randomised experiments: readers of real campaigns and the uplift evaluation over them.

``hillstrom`` (the MineThatData e-mail experiment), ``uplift_metrics`` (ITT lift, uplift
among the top-ranked, Qini), ``uplift_command`` (``streamcrm uplift``).
"""
