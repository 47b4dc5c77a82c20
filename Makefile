# The course's commands (see README.md):
#   make lab     set up (once) and open JupyterLab on notebooks/   (NO_BROWSER=1 on a headless server)
#   make test    set up (once), then the unit tests and every notebook under nbval, offline: the smoke profile,
#                then the gpu-cpu rehearsal of notebooks 03-06 (the gpu profile's code paths at smoke sizes, bf16
#                autocast on the CPU; GPU_CPU_NOTEBOOKS=notebooks for all of them)
#   make course  execute every notebook and solution headless in PROFILE (default cpu) into build/executed/
#   make student write the student edition, build/student/ (do-along solutions replaced by stubs, no outputs)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888
PROFILE ?= cpu
OFFLINE_SMOKE := HF_HUB_OFFLINE=1 TEXTCLF_PROFILE=smoke

.PHONY: setup lab test unit-tests notebook-tests student student-tests gpu-cpu-tests course
setup: $(VENV)/.textclf-installed

$(VENV)/.textclf-installed: requirements.txt pyproject.toml scripts/setup_env.sh
	VENV=$(VENV) bash scripts/setup_env.sh

lab: setup
	$(PY) -m jupyterlab --notebook-dir=notebooks --port=$(PORT) $(if $(NO_BROWSER),--no-browser) \
	    $(if $(filter 0,$(shell id -u)),--allow-root)

test: unit-tests notebook-tests student-tests gpu-cpu-tests

unit-tests: setup
	$(OFFLINE_SMOKE) $(PY) -m pytest tests

notebook-tests: setup
	$(OFFLINE_SMOKE) $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 notebooks

student: setup
	$(PY) scripts/make_student.py --force

# The student edition runs top to bottom with every do-along cell still a stub (the checks say "not done yet").
student-tests: student
	$(OFFLINE_SMOKE) $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 build/student/notebooks

# The notebooks whose gpu profile differs from smoke (gpu recipes and branches): 00-02 have none.
GPU_CPU_NOTEBOOKS ?= $(wildcard notebooks/0[3-6]_*.ipynb notebooks/solutions/0[3-6]_*.ipynb)
gpu-cpu-tests: setup
	HF_HUB_OFFLINE=1 TEXTCLF_PROFILE=gpu-cpu $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 $(GPU_CPU_NOTEBOOKS)

course: setup
	$(PY) scripts/run_course.py --profile $(PROFILE) --solutions
