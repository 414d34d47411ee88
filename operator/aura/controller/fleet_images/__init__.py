"""Golden images (`AgentImage`, image_models.py): build, choose, prune.

- `build.py`: one pass over an AgentImage (builder Agent -> snapshot -> record -> prune);
- `choose.py`: the image a new Agent's server boots from (the server step's hook);
- `labels.py`: the labels that make every step adoptable after a crash;
- `drive.py`: the kopf pass (parse, run, write status, map the outcome).
"""
