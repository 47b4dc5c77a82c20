# The course's commands (see README.md):
#   make lab     set up (once) and open JupyterLab on notebooks/   (NO_BROWSER=1 on a headless server)
#   make test    set up (once), then the unit tests and every notebook under nbval, offline, each run once:
#                the student edition of the lessons (stubs in place, its own package) in the smoke profile; lessons
#                00 and 03 from a wheel installed outside the checkout (as on Colab); lessons 00-02 and the
#                solutions in smoke; lessons and solutions 03-06 in the gpu-cpu rehearsal (the gpu profile's code
#                paths at smoke sizes, bf16 autocast on the CPU). make notebook-tests: every notebook in smoke.
#   make course  execute every notebook and solution headless in PROFILE (default cpu) into build/executed/
#   make student write the student edition, build/student/ (do-along solutions replaced by stubs, no outputs)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888
PROFILE ?= cpu
OFFLINE_SMOKE := HF_HUB_OFFLINE=1 TEXTCLF_PROFILE=smoke

.PHONY: setup lab test unit-tests notebook-tests smoke-tests student student-tests colab-tests gpu-cpu-tests course
setup: $(VENV)/.textclf-installed

$(VENV)/.textclf-installed: requirements.txt pyproject.toml scripts/setup_env.sh
	VENV=$(VENV) bash scripts/setup_env.sh

lab: setup
	$(PY) -m jupyterlab --notebook-dir=notebooks --port=$(PORT) $(if $(NO_BROWSER),--no-browser) \
	    $(if $(filter 0,$(shell id -u)),--allow-root)

test: unit-tests student-tests colab-tests smoke-tests gpu-cpu-tests

unit-tests: setup
	$(OFFLINE_SMOKE) $(PY) -m pytest tests

notebook-tests: setup
	$(OFFLINE_SMOKE) $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 notebooks

# The teacher's notebooks that the gpu-cpu rehearsal does not run (the student edition covers the lessons' smoke path).
SMOKE_NOTEBOOKS ?= $(wildcard notebooks/0[0-2]_*.ipynb notebooks/solutions/0[0-2]_*.ipynb)
smoke-tests: setup
	$(OFFLINE_SMOKE) $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 $(SMOKE_NOTEBOOKS)

student: setup
	$(PY) scripts/make_student.py --force

# The student edition runs top to bottom with every do-along cell still a stub (the checks say "not done yet"),
# from its own folder and with the package it ships (PYTHONPATH puts it before the checkout's editable install).
STUDENT_DIR := build/student
student-tests: student
	cd $(STUDENT_DIR) && PYTHONPATH=$$PWD $(abspath $(PY)) -c \
	    'import os, textclf_utils as t; assert t.__file__.startswith(os.getcwd()), f"imported {t.__file__}"'
	cd $(STUDENT_DIR) && PYTHONPATH=$$PWD $(OFFLINE_SMOKE) $(abspath $(PY)) -m pytest -p no:cacheprovider --nbval-lax \
	    --nbval-current-env --nbval-cell-timeout=900 notebooks

# Colab and Kaggle: the package built as a wheel and installed outside any checkout, lessons 00 and 03 run from a
# folder that is not the repository (scripts/test_installed_package.sh).
colab-tests: setup
	PY=$(abspath $(PY)) bash scripts/test_installed_package.sh notebooks/00_environment_check.ipynb \
	    notebooks/03_finetune_bert.ipynb

# The notebooks whose gpu profile differs from smoke (gpu recipes and branches): 00-02 have none.
GPU_CPU_NOTEBOOKS ?= $(wildcard notebooks/0[3-6]_*.ipynb notebooks/solutions/0[3-6]_*.ipynb)
gpu-cpu-tests: setup
	HF_HUB_OFFLINE=1 TEXTCLF_PROFILE=gpu-cpu $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 $(GPU_CPU_NOTEBOOKS)

course: setup
	$(PY) scripts/run_course.py --profile $(PROFILE) --solutions
