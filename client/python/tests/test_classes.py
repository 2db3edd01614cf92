"""Classes as Python classes, instances with attribute access, statics."""
import pytest

import ffibroker


def test_struct_class_by_value(session):
    Point = session.register_class("Point { mut f64 x; f64 y; } ~point_free")
    assert Point.layout.size == 16
    lib = session.dlopen("classes", ["f64 point_norm2(Point p)"])
    assert lib.point_norm2(Point(x=3.0, y=4.0)) == 25.0
    assert lib.point_norm2({"x": 1.0, "y": 1.0}) == 2.0
    p = Point(x=1.0)
    assert p.y == 0.0 and repr(p) == "Point(x=1.0, y=0.0)"
    with pytest.raises(TypeError, match="no field 'z'"):
        Point(z=1.0)


def test_instances_have_attributes_and_close(session):
    session.register_class("Point { mut f64 x; f64 y; } ~point_free")
    lib = session.dlopen("classes", ["Point* point_new(f64 x, f64 y)",
                                     "void point_scale(Point* p, f64 k)",
                                     "f64 point_sum(Point*? p)"])
    with lib.point_new(1.5, 2.0) as p:
        assert isinstance(p, ffibroker.Instance)
        assert p.x == 1.5 and p.y == 2.0
        p.x = 10.0
        lib.point_scale(p, 2.0)
        assert p.read() == session.classes["Point"](x=20.0, y=4.0)
        with pytest.raises(ffibroker.Error) as e:
            p.y = 1.0  # not `mut`
        assert "y" in e.value.message
        assert lib.point_sum(p) == 24.0
    assert lib.point_sum(None) == -1.0
    q = lib.point_new(0.0, 0.0)
    assert q.close() is True      # point_free ran
    with pytest.raises(ffibroker.FailedPreconditionError):
        q.x


def test_new_instance_in_the_worker(session):
    Point = session.register_class("Point { mut f64 x; f64 y; } ~point_free")
    lib = session.dlopen("classes", ["f64 point_sum(Point* p)"])
    with lib.new(Point, x=1.0, y=2.5) as p:
        assert lib.point_sum(p) == 3.5


def test_opaque_ffireturn_class(session):
    session.register_class("opaque Counter")
    lib = session.dlopen("classes", ["ffireturn Counter* Counter__new(i64 start)",
                                     "ffireturn i64 Counter__value(Counter* self)",
                                     "ffireturn void Counter__increment(Counter* self)"])
    with lib.Counter__new(41) as c:
        lib.Counter__increment(c)
        assert lib.Counter__value(c) == 42


def test_statics(session):
    lib = session.dlopen("classes", [], statics={"counter_static": "mut i32 counter_static"})
    assert lib.statics.counter_static == 5
    lib.statics.counter_static = 9
    assert lib.statics.counter_static == 9
    with pytest.raises(AttributeError):
        lib.statics.nothing
