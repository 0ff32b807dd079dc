"""The render session: Qt-free, below the UI and above engine, audio and core.

What a render is lives here, once, for the command line and the window alike: the document
(project, file, recovery), the plan (each voice and the checkpoint it renders with), the pre-flight
check, model residency within a memory budget, the job pipeline and the session state the window shows
(per-line states, takes, progress, the mix). The window only draws it and forwards the user's actions.
"""
