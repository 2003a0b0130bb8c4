"""Recording in the window: the record panel widget (:mod:`.widget`) and the controller
that docks it and ties it to the document (:mod:`.controller`)."""
