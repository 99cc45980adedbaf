"""The synthetic cohort of ``ntx simulate``: who the patients are and what they do
(:mod:`.cohort`), and the alerts that must follow from it (:mod:`.truth`)."""
