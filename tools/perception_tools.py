"""The perception tools a session gets by default, sharing their loaded models.

``read_text`` and ``describe_scene`` use the same OCR engine, ``scan_codes`` and
``people`` the same scanner and face finder as the describer, so each model is
loaded (and warmed up) once.
"""

from __future__ import annotations

from typing import Any

from heron.tools.base import Tool
from heron.tools.codes import CodeScanner, ScanCodesTool
from heron.tools.colours import ColoursTool
from heron.tools.light import LightTool
from heron.tools.observation import Perceiver
from heron.tools.ocr import ReadTextTool, TextReader
from heron.tools.people import FaceFinder, PeopleTool
from heron.tools.scene import DescribeSceneTool


def perception_tools(reader: TextReader | None = None) -> list[Tool[Any]]:
    """read_text, scan_codes, people, colours, light and describe_scene."""
    reader = reader if reader is not None else TextReader()
    scanner = CodeScanner()
    faces = FaceFinder()
    perceiver = Perceiver(reader=reader, scanner=scanner, faces=faces)
    return [
        ReadTextTool(reader),
        ScanCodesTool(scanner),
        PeopleTool(faces),
        ColoursTool(),
        LightTool(),
        DescribeSceneTool(perceiver),
    ]
