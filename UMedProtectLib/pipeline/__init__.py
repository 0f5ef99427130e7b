"""The engine's pipelines from files to files: one study read, protected and written (`study.py`), a profile fitted
on a dataset's files (`profile_fit.py`). The command line, the dataset jobs and the Slicer runner call them."""
