"""How a worker learns of jobs: each transport only delivers job ids to the executor."""
