"""Train Style Model: a registered recipe trained into models/nst_models, with progress, previews and resume."""
from __future__ import annotations

from comfy_api.latest import io

from ..training import style_recipes, train_style_model

CATEGORY = "Brushstream"


class TrainStyleModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BrushstreamTrainStyleModel", display_name="Train Style Model", category=f"{CATEGORY}/training",
            description="Train a style network into models/nst_models/NAME.safetensors. Interrupting keeps the "
                        "last checkpoint; run again with resume on (and more steps, if you like) to continue.",
            inputs=[
                io.Combo.Input("recipe", options=style_recipes(), default="johnson",
                               tooltip="the method to train (brushstream train --help lists each recipe's settings)"),
                io.Image.Input("style", tooltip="the style image(s); a batch is several styles for multi-style "
                                                "methods"),
                io.String.Input("name", default="my_style", tooltip="file name in models/nst_models"),
                io.Int.Input("steps", default=200, min=1, max=1_000_000),
                io.Int.Input("size", default=0, min=0, max=2048, tooltip="training crop size in px; 0: the recipe's"),
                io.String.Input("content_dir", default="", tooltip="folder of training photos; empty: the "
                                                                   "project's content set, fetched and cached"),
                io.Boolean.Input("resume", default=True, tooltip="continue NAME's checkpoint when there is one"),
                io.Int.Input("preview_every", default=25, min=1, max=100_000),
                io.Float.Input("minutes", default=0.0, min=0.0, max=1440.0, step=0.5,
                               tooltip="wall-clock budget: the run is planned to end within it with a usable "
                                       "model (steps then only caps it); 0: train for steps"),
            ],
            outputs=[io.String.Output(display_name="model_file"), io.Image.Output(display_name="preview")],
            is_output_node=True)

    @classmethod
    def execute(cls, recipe, style, name, steps, size=0, content_dir="", resume=True, preview_every=25, minutes=0.0):
        file_name, preview = train_style_model(recipe, style, name, steps=steps, size=size, content_dir=content_dir,
                                               resume=resume, preview_every=preview_every, minutes=minutes)
        if preview is None:   # a resumed run that had nothing left to do
            preview = style[:1]
        return io.NodeOutput(file_name, preview)
