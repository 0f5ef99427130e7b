"""Removing nodes cleanly, so that temporary nodes and failed runs leave the scene exactly as it was."""

from __future__ import annotations


def removeNodeWithDisplay(node) -> None:
    """Remove a node together with the display and storage nodes it owns (RemoveNode alone orphans them)."""
    scene = node.GetScene() if node is not None else None
    if scene is None:
        return
    owned = []
    if node.IsA("vtkMRMLDisplayableNode"):
        owned += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        owned += [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
    scene.RemoveNode(node)
    for ownedNode in owned:
        if ownedNode is not None and ownedNode.GetScene() is scene:
            scene.RemoveNode(ownedNode)


def nodeIds(scene) -> set:
    """IDs of every node in the scene."""
    return {scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())}


class RemoveAddedNodes:
    """Context manager: every node added to the scene inside the block is removed when it ends.

    For temporary conversions (e.g. segmentation -> label map) that add helper nodes such as colour tables.
    """

    def __init__(self, scene, since: set | None = None):
        self.scene = scene
        self.before: set = set() if since is None else set(since)
        self._snapshot = since is None

    def __enter__(self) -> "RemoveAddedNodes":
        if self._snapshot:
            self.before = nodeIds(self.scene)
        return self

    def __exit__(self, *exc) -> bool:
        for nodeId in nodeIds(self.scene) - self.before:
            node = self.scene.GetNodeByID(nodeId)
            if node is not None:
                self.scene.RemoveNode(node)
        return False
