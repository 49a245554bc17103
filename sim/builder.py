"""Builds the standalone MJCF of a face from its design (:mod:`facetwin.sim.face_design`) and the actuator table.

``build_mjcf()`` returns one self-contained XML string (no include, no mesh files): skull, jaw, eyes, eyelids,
neck, the skin flex with its free vertex bodies, 26 tendons and 26 tendon actuators, the mirror camera and lights.
The same string is what ``facetwin export-xml`` writes and what ``assets/face/face.xml`` holds.
Each part of the file (header, assets, room, skull, eyes, jaw, free skin vertices, deformable, tendons,
actuators) is written by its own ``_*_xml`` helper, in file order.

Variants (same face, same actuators, same landmarks):

* ``"full"``  - the reference model: physics at 300 Hz (10 substeps per 30 Hz control step), solver tolerance 1e-3.
* ``"fast"``  - the training variant: the same model with physics at 90 Hz (3 substeps), tolerance 1e-2.

The skin integrator (``discrete``) is unconditionally stable, so the step size trades accuracy of fast transients,
not stability; the steady shapes (seal, opening, spread, rounding) are the same in both. The discrete integrator
adds about ``timestep * kp`` of damping to every position servo, so each servo's velocity gain is lowered by
``(timestep - 1/300) * kp``: the larger step keeps the servos' damping of the reference (half the error of not
doing so). The lips' contact needs the reference's small step to stop a fast closing without crossing: at 90 Hz
a hard "ah" -> "mm" closing dips ~1 mm past the seal for a frame. At 60 Hz the training variant would be 1.5x
faster but its lips 0.58 mm (mean) from the reference's; at 90 Hz 0.33 mm (issue 13 asks <= 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import geometry as g
from . import render_surface as rs
from . import visuals as vis
from .actuators import Actuator, load_actuators
from .face_design import FaceDesign, builtin_design
from .landmarks import inner_lip_ids
from .rates import CONTROL_HZ


@dataclass(frozen=True)
class Variant:
    name: str
    substeps: int  # physics steps per control step (timestep = 1 / (CONTROL_HZ * substeps))
    description: str
    tolerance: float = 1e-3  # Newton solver tolerance


VARIANTS = {
    "full": Variant("full", 10, "reference model: physics at 300 Hz", 1e-3),
    "fast": Variant("fast", 3, "training variant: physics at 90 Hz, same face and actuators", 1e-2),
}
REFERENCE_DT = 1.0 / 300.0  # the servos' damping is the one they have at this step

# Skin material (silicone, e.g. Ecoflex 00-50 class): Young's modulus (Pa), Poisson, thickness (m), Rayleigh
# damping (s), areal density (kg/m^2).
SKIN_YOUNG = 8.0e4
SKIN_POISSON = 0.45
SKIN_THICKNESS = 0.0025
SKIN_DAMPING = 0.004
SKIN_AREAL_DENSITY = 1100.0 * SKIN_THICKNESS

# Mirror camera: 0.42 m in front of the face, looking back at it (+y of the face shows on the image's right in
# the raw image; facetwin.sim.render flips it like a mirror).
MIRROR_POS = (0.42, 0.0, -0.022)
MIRROR_FOVY = 34.0
NECK_PIVOT = (-0.020, 0.0, -0.105)  # in the head frame


def _f(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.ravel(v))


def skin_vertex_frames(design: FaceDesign) -> tuple[list[str], np.ndarray]:
    """For every skin vertex: the body that carries it and its position in that body's frame."""
    skin = design.skin
    bodies, local = [], np.zeros_like(skin.vertices)
    for i, (how, p) in enumerate(zip(skin.attach, skin.vertices)):
        if how == "free":
            bodies.append(f"skin_{i}")
        elif how == "jaw":
            bodies.append("jaw")
            local[i] = p - design.jaw_pivot
        else:
            bodies.append("head")
            local[i] = p
    return bodies, local


def deformable_triangles(skin: g.SkinMesh) -> np.ndarray:
    """Indices of the triangles that can deform: those not entirely glued to the head or entirely to the jaw.

    Only these are simulated as a flex: glued parts never deform, and leaving them out keeps the flex small (its cost
    grows with its elements, pinned or not). The whole surface is drawn by render-only skins.
    """
    att = skin.attach[skin.triangles]
    return np.flatnonzero(~(att == "head").all(axis=1) & ~(att == "jaw").all(axis=1))


def _skin_xml(name: str, material: str, group: int, design: FaceDesign, drawn: vis.DrawnFace, bodies: list[str],
              tris: np.ndarray) -> list[str]:
    """A MuJoCo ``<skin>`` (render-only mesh) over the triangles ``tris`` of the ``drawn`` face: every vertex a fixed
    combination of skin (and collar) vertices, bound to the ``bodies`` that carry them
    (:func:`render_surface.skin_bones`); the skin material's with texture coordinates (:func:`visuals.skin_texcoords`).

    The whole face surface is drawn by skins (skin, lips, brows) rather than by the flex: MuJoCo
    computes skin normals over the whole surface, so glued and simulated parts shade as one smooth mask.
    """
    surface = drawn.surface
    used = np.unique(tris)
    remap = -np.ones(len(surface.weights), dtype=int)
    remap[used] = np.arange(len(used))
    rest = surface.vertices(drawn.rest)[used]
    uv = f'texcoord="{_f(vis.skin_texcoords(rest, design))}" ' if material == "skin" else ""
    out = [f'    <skin name="{name}" material="{material}" group="{group}" vertex="{_f(rest)}" {uv}'
           f'face="{" ".join(str(int(k)) for k in remap[tris].ravel())}">']
    for b in rs.skin_bones(surface.weights[used], bodies, drawn.rest, design.jaw_pivot):
        out.append(f'      <bone body="{b.body}" bindpos="{_f(b.bindpos)}" bindquat="1 0 0 0" '
                   f'vertid="{" ".join(map(str, b.vertid))}" vertweight="{" ".join(f"{w:.8g}" for w in b.weight)}"/>')
    out.append('    </skin>')
    return out


LID_UPPER_EDGE = math.radians(22.0)  # elevation of the upper lid edge at rest
LID_LOWER_EDGE = math.radians(-26.0)


@dataclass(frozen=True)
class _Face:
    """What the parts of the MJCF share: the skin mesh, the actuator table and the skin actuators' end points."""

    design: FaceDesign
    acts: tuple[Actuator, ...]
    anchors: dict[str, np.ndarray]  # skin actuator name -> its anchor point (head frame)
    insert_sites: dict[int, list[str]]  # free skin vertex -> the skin actuators inserting there

    @property
    def skin(self) -> g.SkinMesh:
        return self.design.skin

    def actuator_of(self, insertion: str) -> Actuator:
        """The actuator that drives the joint ``insertion``."""
        return next(a for a in self.acts if a.insertion == insertion)


def _face_of(design: FaceDesign, acts: tuple[Actuator, ...]) -> _Face:
    """Where the skin actuators attach: insertions on free skin vertices, anchors offset from them."""
    skin = design.skin
    v = skin.vertices
    insert_sites: dict[int, list[str]] = {}
    for a in acts:
        if a.kind == "skin":
            vid = skin.named[a.insertion]
            if skin.attach[vid] != "free":
                raise ValueError(f"actuator {a.name}: insertion {a.insertion} is not a free skin vertex")
            insert_sites.setdefault(vid, []).append(a.name)
    anchors = {a.name: v[skin.named[a.insertion]] + np.array(a.anchor_offset_mm) / 1000.0
               for a in acts if a.kind == "skin"}
    return _Face(design, acts, anchors, insert_sites)


def _vertex_masses(skin: g.SkinMesh) -> np.ndarray:
    """Lumped skin vertex masses (kg) from the triangle areas, at least 20 mg."""
    v, tri = skin.vertices, skin.triangles
    area = 0.5 * np.linalg.norm(np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]]), axis=1)
    vmass = np.zeros(len(v))
    for k in range(3):
        np.add.at(vmass, tri[:, k], area / 3.0)
    return np.maximum(vmass * SKIN_AREAL_DENSITY, 2e-5)


def _header_xml(variant: str, var: Variant) -> list[str]:
    """The model's opening: compiler, physics options (the variant's timestep), custom data, visual settings."""
    dt = 1.0 / (CONTROL_HZ * var.substeps)
    return [
        f'<mujoco model="facetwin_face_{variant}">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{dt:.8g}" integrator="discrete" solver="Newton" iterations="50" '
        f'tolerance="{var.tolerance:g}"/>',
        '  <size memory="40M"/>',
        '  <custom>',
        f'    <numeric name="control_hz" data="{CONTROL_HZ:g}"/>',
        f'    <numeric name="substeps" data="{var.substeps}"/>',
        f'    <text name="variant" data="{variant}"/>',
        '  </custom>',
        '  <visual>',
        '    <global offwidth="1280" offheight="960" fovy="32"/>',
        '    <quality shadowsize="4096" offsamples="4"/>',
        '    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0.05 0.05 0.05"/>',
        '    <map znear="0.01" zfar="20"/>',
        '  </visual>',
    ]


def _asset_xml(design: FaceDesign) -> list[str]:
    """Textures, materials and the drawn parts' meshes (:func:`visuals.asset_xml`)."""
    return ['  <asset>', *vis.asset_xml(design), '  </asset>']


_DEFAULT_XML = [
    '  <default>',
    '    <geom contype="0" conaffinity="0" group="1"/>',
    '    <site group="4" size="0.001" rgba="0.1 0.8 0.1 1"/>',
    '    <tendon width="0.0005" rgba="0.2 0.6 0.9 1" group="4"/>',
    '  </default>',
]


def _room_xml(face: _Face) -> list[str]:
    """The room around the fixed head: the neck joints, lights, cameras, backdrop and torso.

    The world frame IS the head frame. MuJoCo 4 flex elasticity is fast and well conditioned only when the skin
    vertices hang from a body without joints, so the neck is modelled in the head's frame: its three joints move the
    "room" (torso, mirror camera, lights, backdrop) around the fixed head. The relative motion, which is all the mirror
    camera and the landmarks see, is the same; FaceModel rotates gravity with the room each control step.
    """
    L = ['    <body name="room" pos="0 0 0">',
         '      <inertial pos="-0.02 0 -0.1" mass="1.2" diaginertia="0.006 0.006 0.005"/>']
    for jn, axis, rng in (("neck_roll", "-1 0 0", 0.35), ("neck_pitch", "0 1 0", 0.45), ("neck_yaw", "0 0 -1", 0.6)):
        L.append(f'      <joint name="{jn}" type="hinge" pos="{_f(NECK_PIVOT)}" axis="{axis}" range="{-rng} {rng}" '
                 f'damping="0.05" armature="{face.actuator_of(jn).armature:g}"/>')
    return L + [
        f'      <camera name="mirror" pos="{_f(MIRROR_POS)}" xyaxes="0 1 0 0 0 1" fovy="{MIRROR_FOVY}"/>',
        '      <camera name="mouth" pos="0.20 0 -0.058" xyaxes="0 1 0 0 0 1" fovy="24"/>',
        '      <camera name="three_quarter" pos="0.34 0.26 0.02" xyaxes="-0.6 0.8 0 -0.05 -0.04 1" fovy="34"/>',
        *vis.room_xml(face.design),  # lights, backdrop, torso and neck
        '    </body>',
    ]


def _skull_xml(face: _Face) -> list[str]:
    """The head's own geoms (skull, cranium, hair, ears, mouth cavity, upper teeth) and its anchor sites."""
    L = [*vis.head_xml(face.design), '      <site name="head_origin" pos="0 0 0"/>']
    return L + [f'      <site name="anchor_{a.name}" pos="{_f(face.anchors[a.name])}"/>'
                for a in face.acts if a.kind == "skin" and a.anchor_body == "head"]


def _eye_xml(face: _Face, side: int, tag: str) -> list[str]:
    """One eye (yaw and pitch joints, sclera, iris, pupil) and its two eyelids, on the ``tag`` ("R"/"L") side."""
    c, r = face.design.eye_center(side), face.design.eye_radius
    ay = face.actuator_of(f"eye_yaw_{tag}")
    L = [f'      <body name="eye_{tag}" pos="{_f(c)}">',
         '        <inertial pos="0 0 0" mass="0.007" diaginertia="4e-7 4e-7 4e-7"/>',
         f'        <joint name="eye_yaw_{tag}" type="hinge" axis="0 0 1" range="-0.55 0.55" damping="1e-4" '
         f'armature="{ay.armature:g}"/>',
         f'        <joint name="eye_pitch_{tag}" type="hinge" axis="0 -1 0" range="-0.45 0.45" damping="1e-4" '
         f'armature="{ay.armature:g}"/>',
         *vis.eye_xml(face.design, tag),
         f'        <site name="iris_center_{tag}" pos="{r + 0.0008:.5g} 0 0"/>',
         '      </body>']
    rr = r + 0.0018
    for lid, axis, edge, rng in (("upper", "0 1 0", LID_UPPER_EDGE, (-0.35, 1.1)),
                                 ("lower", "0 -1 0", LID_LOWER_EDGE, (-0.3, 0.6))):
        a = face.actuator_of(f"eyelid_{lid}_{tag}")
        L += [f'      <body name="eyelid_{lid}_{tag}" pos="{_f(c)}">',
              '        <inertial pos="0.006 0 0" mass="0.002" diaginertia="1e-7 1e-7 1e-7"/>',
              f'        <joint name="eyelid_{lid}_{tag}" type="hinge" axis="{axis}" range="{rng[0]} {rng[1]}" '
              f'damping="1e-4" armature="{a.armature:g}"/>',
              *vis.lid_geoms(lid, tag),
              f'        <site name="lid_edge_{lid}_{tag}" pos="{rr * math.cos(edge):.5g} 0 {rr * math.sin(edge):.5g}"/>',
              '      </body>']
    return L


def _jaw_xml(face: _Face) -> list[str]:
    """The jaw body: its hinge, lower teeth, tongue, mouth floor and the anchor sites it carries."""
    jaw_pivot = face.design.jaw_pivot
    L = [f'      <body name="jaw" pos="{_f(jaw_pivot)}">',
         '        <inertial pos="0.06 0 -0.05" mass="0.15" diaginertia="2e-4 2e-4 2e-4"/>',
         f'        <joint name="jaw" type="hinge" axis="0 1 0" range="-0.03 0.34" damping="0.01" '
         f'armature="{face.actuator_of("jaw").armature:g}"/>',
         *vis.jaw_xml(face.design)]
    L += [f'        <site name="anchor_{a.name}" pos="{_f(face.anchors[a.name] - jaw_pivot)}"/>'
          for a in face.acts if a.kind == "skin" and a.anchor_body == "jaw"]
    return L + ['      </body>']


LIP_CONTACT_RADIUS = 0.0015  # the lips' contact capsules: about a lip's thickness ...
LIP_CONTACT_GAP = 0.0  # ... set back so that they touch when the inner lip vertices are this far apart
LIP_CONTACT_SOLREF = "0.004 1"  # contact recovery time constant (clamped to 2 timesteps by MuJoCo), critically damped
LIP_CONTACT_SOLIMP = "0.99 0.999 0.0005"  # nearly hard: a lip press cannot push through, whatever the force
LIP_CONTACT_MARGIN = 0.001  # per capsule: forces start 1 mm (two margins) before the capsules touch, so that a fast
# closing is caught in time


def _lip_contact_geoms(design: FaceDesign) -> dict[int, str]:
    """Free skin vertex -> its lip contact capsule. Each inner lip vertex carries a capsule along its contour (half
    the way to its neighbours), its axis above (upper lip) or below (lower lip) the vertex by the capsule's radius plus
    its margin (a pair's margin is the sum of both) minus half :data:`LIP_CONTACT_GAP`: the lips meet, and cannot cross, when their inner edges are
    ``LIP_CONTACT_GAP`` apart. Upper capsules collide only with lower ones (contype 2 / conaffinity 4 and back)."""
    if not design.lip_contact:
        return {}
    v, out = design.skin.vertices, {}
    lift = LIP_CONTACT_RADIUS + LIP_CONTACT_MARGIN - 0.5 * LIP_CONTACT_GAP
    for ids, sign, bits in zip(inner_lip_ids(), (1.0, -1.0),
                               ('contype="2" conaffinity="4"', 'contype="4" conaffinity="2"')):
        verts = [design.landmark_vertices[int(i)] for i in ids]
        for k, vid in enumerate(verts):
            a, b = v[verts[max(k - 1, 0)]], v[verts[min(k + 1, len(verts) - 1)]]
            half = 0.5 * (b - a) / (2 if 0 < k < len(verts) - 1 else 1)
            c = np.array([0.0, 0.0, sign * lift])
            out[vid] = (f'        <geom name="lip_contact_{vid}" type="capsule" fromto="{_f(c - half)} {_f(c + half)}" '
                        f'size="{LIP_CONTACT_RADIUS:g}" {bits} condim="3" friction="1" solref="{LIP_CONTACT_SOLREF}" '
                        f'solimp="{LIP_CONTACT_SOLIMP}" margin="{LIP_CONTACT_MARGIN:g}" group="3"/>')
    return out


def _free_skin_xml(face: _Face) -> list[str]:
    """The free skin vertices: one body with three slide joints each, the insertion sites they carry and, on the
    inner lips of a design with lip contact, the capsules that let the lips meet without crossing."""
    v, vmass = face.skin.vertices, _vertex_masses(face.skin)
    contact = _lip_contact_geoms(face.design)
    L: list[str] = []
    for i in face.skin.free:
        L += [f'      <body name="skin_{i}" pos="{_f(v[i])}">',
              f'        <inertial pos="0 0 0" mass="{vmass[i]:.4g}" diaginertia="1e-9 1e-9 1e-9"/>']
        L += [f'        <joint name="skin_{i}_{an}" type="slide" axis="{ax}"/>'
              for ax, an in (("1 0 0", "x"), ("0 1 0", "y"), ("0 0 1", "z"))]
        L += [f'        <site name="insert_{name}"/>' for name in face.insert_sites.get(int(i), [])]
        L += [contact[int(i)]] if int(i) in contact else []
        L.append('      </body>')
    return L


def _worldbody_xml(face: _Face) -> list[str]:
    """The bodies: the room, and the head with its skull, eyes, eyelids, jaw and free skin vertices."""
    L = ['  <worldbody>', *_room_xml(face),
         '    <body name="head" pos="0 0 0">',
         '      <inertial pos="0 0 0" mass="1.2" diaginertia="0.006 0.006 0.005"/>',
         *_skull_xml(face)]
    for side, tag in ((-1, "R"), (1, "L")):
        L += _eye_xml(face, side, tag)
    return L + _jaw_xml(face) + _free_skin_xml(face) + ['    </body>', '  </worldbody>']


def _deformable_xml(design: FaceDesign) -> list[str]:
    """The face surface as drawn (two render-only skins) and the skin flex: its deformable part, renumbered."""
    skin = design.skin
    frame_bodies, frame_local = skin_vertex_frames(design)
    tri = skin.triangles
    flex_tris = deformable_triangles(skin)
    ftri = tri[flex_tris]
    fverts = np.unique(ftri)
    remap = -np.ones(len(skin.vertices), dtype=int)
    remap[fverts] = np.arange(len(fverts))
    bodies = [frame_bodies[i] for i in fverts]
    mats = " ".join(str(m) for m in skin.tri_material[flex_tris])
    L = ['  <deformable>']
    # the face surface as drawn (render only): the skin subdivided, glued and simulated parts in one smooth mesh,
    # lips apart
    for levels, group, suffix in rs.DRAWINGS:
        drawn = vis.drawn_face(design, levels)
        for name, mat in (("face_skin", "skin"), ("face_lips", "lip"), ("face_brows", "brow")):
            if (drawn.materials == mat).any():
                L += _skin_xml(name + suffix, mat, group, design, drawn, drawn.bodies(frame_bodies),
                               drawn.surface.triangles[drawn.materials == mat])
    # the physics of the skin (group 3: hidden in images, the skins above draw it)
    return L + [
        f'    <flex name="skin" dim="2" radius="0.0003" group="3" body="{" ".join(bodies)}" '
        f'vertex="{_f(np.array(frame_local[fverts]))}" '
        f'element="{" ".join(str(int(k)) for k in remap[ftri].ravel())}" material="{mats}">',
        f'      <elasticity young="{SKIN_YOUNG:g}" poisson="{SKIN_POISSON:g}" thickness="{SKIN_THICKNESS:g}" '
        f'damping="{SKIN_DAMPING:g}" elastic2d="both"/>',
        '      <contact contype="0" conaffinity="0"/>',
        '    </flex>',
        '  </deformable>',
    ]


def _tendon_xml(acts: tuple[Actuator, ...]) -> list[str]:
    """One tendon per actuator: spatial (anchor to insertion) for the skin, fixed (its joint) for the others."""
    L = ['  <tendon>']
    for a in acts:
        if a.kind == "skin":
            L += [f'    <spatial name="{a.name}" armature="{a.armature:g}">',
                  f'      <site site="anchor_{a.name}"/>',
                  f'      <site site="insert_{a.name}"/>',
                  '    </spatial>']
        else:
            L.append(f'    <fixed name="{a.name}"><joint joint="{a.insertion}" coef="1"/></fixed>')
    return L + ['  </tendon>']


def _actuator_xml(face: _Face, dt: float) -> list[str]:
    """The actuators: position servos in normalized units, written as affine general actuators.

    force = kp * (target(ctrl) - length) - kv * velocity, target affine in ctrl in [-1, 1]; critically damped
    (kv = 2 sqrt(kp * armature)) at the reference step, less the damping a larger step ``dt`` adds (module doc).
    """
    L = ['  <actuator>']
    for a in face.acts:
        if a.kind == "skin":
            length0 = float(np.linalg.norm(face.anchors[a.name] - face.skin.vertices[face.skin.named[a.insertion]]))
            slope = -a.sign * a.stroke / 1000.0  # target length change per unit ctrl
            offset = length0
        else:
            slope = math.radians(a.stroke)
            offset = math.radians(a.offset_deg)
        kv = max(2.0 * math.sqrt(a.kp * max(a.armature, 1e-9)) - (dt - REFERENCE_DT) * a.kp, 0.0)
        L.append(f'    <general name="{a.name}" tendon="{a.name}" ctrlrange="-1 1" '
                 f'forcerange="{-a.force_max:g} {a.force_max:g}" gainprm="{a.kp * slope:.6g}" biastype="affine" '
                 f'biasprm="{a.kp * offset:.6g} {-a.kp:.6g} {-kv:.6g}"/>')
    return L + ['  </actuator>']


def build_mjcf(variant: str = "full", design: FaceDesign | None = None) -> str:
    """The complete, standalone MJCF of the face for ``variant`` ("full" or "fast"); ``design``: the face
    (default: :func:`~facetwin.sim.face_design.builtin_design`)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {sorted(VARIANTS)}")
    acts = load_actuators()
    design = builtin_design() if design is None else design
    face = _face_of(design, acts)
    rest = " ".join(f"{a.rest:g}" for a in acts)
    L = [*_header_xml(variant, VARIANTS[variant]), *_asset_xml(design), *_DEFAULT_XML, *_worldbody_xml(face),
         *_deformable_xml(design), *_tendon_xml(acts),
         *_actuator_xml(face, 1.0 / (CONTROL_HZ * VARIANTS[variant].substeps)),
         '  <keyframe>', f'    <key name="neutral" ctrl="{rest}"/>', '  </keyframe>', '</mujoco>']
    return "\n".join(L) + "\n"
