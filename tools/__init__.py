"""Tools the model can call: typed functions with a pydantic argument model.

:mod:`heron.tools.base` defines what a tool is and runs calls safely;
:mod:`heron.tools.ocr` reads the text in the camera frame.
"""
