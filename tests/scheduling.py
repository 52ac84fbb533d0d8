"""How `make test` shares the suite between its two pytest-xdist workers: a pytest plugin (the
conftest imports its hooks). Slowest first, so the two workers finish together. A unit of work goes
to one worker: each slow test alone, notebooks 04, 05, 07 and 08 right after 03 (04 compares itself with
03's figures, 05 serves the model 03 trained, 07 and 08 tune it further with DPO and GRPO), every other module whole
(its module-scoped fixtures, such as a trained emulator job, are then built once)."""

SLOWEST = ["test_notebook_runs_and_meets_its_figures[03-huggingface-trl]",
           "test_notebook_runs_and_meets_its_figures[04-autotrain]",
           "test_notebook_runs_and_meets_its_figures[05-serve-your-model]",
           "test_notebook_runs_and_meets_its_figures[07-preference-tuning]",
           "test_notebook_runs_and_meets_its_figures[08-reinforcement-fine-tuning]",
           "test_notebook_runs_and_meets_its_figures[00-should-you-fine-tune]",
           "test_notebook_runs_and_meets_its_figures[01-openai]",
           "test_a_learner_runs_a_notebook_in_jupyterlab",
           "test_notebook_runs_and_meets_its_figures[02-azure-openai]",
           "test_notebook_runs_and_meets_its_figures[06-scale-out]"]
TOGETHER = {SLOWEST[i]: SLOWEST[0] for i in (1, 2, 3, 4)}  # 04, 05, 07, 08 use what 03 trained


def work_unit(nodeid: str) -> str:
    """The share of the suite one worker runs as a whole: a slow test, or a test module."""
    module, _, name = nodeid.partition("::")
    return TOGETHER.get(name, name) if name in SLOWEST else module


def pytest_xdist_make_scheduler(config, log):
    """Hand out work units in collection order (slowest first), never splitting one, one at a time."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _reschedule(self, node) -> None:
            """The next unit only once a worker is on its last test (xdist's default takes a third
            unit while two tests wait, which queued three notebooks on one worker)."""
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
            elif self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    config.option.loadscopereorder = False  # keep the order below, not largest-module-first
    return WorkUnits(config, log)


def rank(item) -> int:
    """Where a test is handed out: the slowest in their order, then all others as collected."""
    return SLOWEST.index(item.name) if item.name in SLOWEST else len(SLOWEST)


def pytest_collection_modifyitems(items):
    """Tests marked `last` run after all others (the secret scan reads what they wrote); under xdist
    `make test` runs them in a second pytest call, once every worker has finished."""
    items.sort(key=lambda item: (item.get_closest_marker("last") is not None, rank(item)))
