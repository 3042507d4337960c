"""World weights: a small open_clip CLIP pretrained contrastively on the captioned synthetic world.

``caadbench pretrain`` trains them (:mod:`~caadbench.models.world.train`), :mod:`~caadbench.models.world.zeroshot`
measures what they know (subject and context recognition with plain prompts) and
:mod:`~caadbench.models.world.weights` resolves the shipped checkpoint for ``--pretrained world``.
"""
