"""Workers: processes that claim flow runs from a work pool and start them on infrastructure.

`headwater.worker.infrastructure` is the plugin interface (job templates,
the `Infrastructure` base class and its registry). Nothing here is imported
by `import headwater`.
"""
