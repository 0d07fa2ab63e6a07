"""The scheduler (issue 13): ``task run`` drains a project's ready tasks with a bounded number of worker
sessions (:mod:`.core` decides, :mod:`.runner` acts, :mod:`.store` keeps the runs), and the governor
(:mod:`.admission`, :mod:`.governor`) admits spawns while there is room (live agents, memory)."""
