"""Thin adapters that plug application models (vision, language, SCAN) into the equirl core.

Each adapter declares a symmetry (a group, its action on inputs, its action on outputs) and calls
the core's single group-averaging implementation (:class:`equirl.GroupAveraged`); none has its own
averaging, equizero or λ-equitune code. Optional dependencies are imported lazily.
"""
