"""Machine facts recorded beside every benchmark figure (shared, noisy machines: say what it ran on)."""

import datetime
import os
import platform


def machine_facts():
    """A dict: date, CPU model, core count, load average, Python and library versions."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy
    import scipy
    import sklearn

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1_5_15": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": numpy.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
    }


def machine_markdown():
    return "\n".join(f"- {key}: {value}" for key, value in machine_facts().items())


def write_report(path, lines):
    """Write a markdown report: ``lines``, then the machine facts; print it too."""
    text = "\n".join([*lines, "", machine_markdown()]) + "\n"
    path.write_text(text)
    print(text)
