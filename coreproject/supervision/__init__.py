"""What run_services.py needs beyond starting and restarting processes: children
that die with it (``pdeathsig``), one supervisor per role and no strays beside it
(``guards``), and the web address it checks and announces (``address``)."""
