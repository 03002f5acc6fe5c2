"""Build hook: the wheel carries the project's templates/, settings.toml and example feed.

They stay where they are in the source tree (templates/ is the one source an author edits in a
checkout); at build time they are copied into the package as `syndicate/_skeleton/`, from where
`syndicate init` and the template fallback read them. setuptools' package-dir mapping would
need every package listed by hand instead of found, so a copy is the smaller rule.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SKELETON = ("settings.toml", "templates", "examples/feed.xml")


class BuildWithSkeleton(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        target = Path(self.build_lib) / "syndicate" / "_skeleton"
        for name in SKELETON:
            source, copy = ROOT / name, target / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(
                    source, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copyfile(source, copy)


setup(cmdclass={"build_py": BuildWithSkeleton})
