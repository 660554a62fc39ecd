"""TensorFlow's beginner tutorial "Basic classification: Classify images of clothing"
(tensorflow.org/tutorials/keras/classification), transcribed with its import changed
and nothing else in the code it runs:

    import tensorflow as tf       ->  import minicnn as keras
    tf.keras.<name>               ->  keras.<name>
    print(tf.__version__)         ->  print(keras.__version__)

The tutorial is written against TensorFlow's ``tf.keras``, which is Keras 3 itself since
TensorFlow 2.16; with ``import keras`` in place of ``import tensorflow as tf`` every
``tf.keras.X`` of it reads ``keras.X`` and the program is unchanged, and that form is
ported here (run it under Keras 3 by putting ``import keras`` back).

Left out: the notebook's matplotlib cells (the first training image with a colour bar,
the 5 x 5 grid of training images, ``plot_image`` / ``plot_value_array`` and the
figures drawn with them) and with them ``import matplotlib.pyplot as plt``; nothing else
uses their results. The notebook's bare expressions (``train_images.shape``,
``np.argmax(predictions[0])``, ...) are kept as they are: a notebook shows their values,
a script computes them and shows nothing.

    python examples/keras_ports/basic_classification.py

It reads the full Fashion-MNIST where a copy is installed (Keras's
~/.keras/datasets/fashion-mnist or minicnn's places), else the 10,000 + 2,000 image
subset shipped with minicnn.
"""
# TensorFlow and tf.keras
import minicnn as keras

# Helper libraries
import numpy as np

print(keras.__version__)

"""
## Import the Fashion MNIST dataset

This guide uses the Fashion MNIST dataset which contains 70,000 grayscale images in 10
categories. The images show individual articles of clothing at low resolution (28 by
28 pixels).

Fashion MNIST is intended as a drop-in replacement for the classic MNIST dataset—often
used as the "Hello, World" of machine learning programs for computer vision. The MNIST
dataset contains images of handwritten digits (0, 1, 2, etc.) in a format identical to
that of the articles of clothing you'll use here.

This guide uses Fashion MNIST for variety, and because it's a slightly more
challenging problem than regular MNIST. Both datasets are relatively small and are used
to verify that an algorithm works as expected. They're good starting points to test
and debug code.

Here, 60,000 images are used to train the network and 10,000 images to evaluate how
accurately the network learned to classify images. You can access the Fashion MNIST
directly from TensorFlow. Import and load the Fashion MNIST data directly from
TensorFlow:
"""

fashion_mnist = keras.datasets.fashion_mnist

(train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_data()

"""
Loading the dataset returns four NumPy arrays:

* The `train_images` and `train_labels` arrays are the *training set*—the data the
  model uses to learn.
* The model is tested against the *test set*, the `test_images`, and `test_labels`
  arrays.

The images are 28x28 NumPy arrays, with pixel values ranging from 0 to 255. The
*labels* are an array of integers, ranging from 0 to 9. These correspond to the
*class* of clothing the image represents:

Label | Class
----- | -----------
0     | T-shirt/top
1     | Trouser
2     | Pullover
3     | Dress
4     | Coat
5     | Sandal
6     | Shirt
7     | Sneaker
8     | Bag
9     | Ankle boot

Each image is mapped to a single label. Since the *class names* are not included with
the dataset, store them here to use later when plotting the images:
"""

class_names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

"""
## Explore the data

Let's explore the format of the dataset before training the model. The following shows
there are 60,000 images in the training set, with each image represented as 28 x 28
pixels:
"""

train_images.shape

"""
Likewise, there are 60,000 labels in the training set:
"""

len(train_labels)

"""
Each label is an integer between 0 and 9:
"""

train_labels

"""
There are 10,000 images in the test set. Again, each image is represented as 28 x 28
pixels:
"""

test_images.shape

"""
And the test set contains 10,000 images labels:
"""

len(test_labels)

"""
## Preprocess the data

The data must be preprocessed before training the network. If you inspect the first
image in the training set, you will see that the pixel values fall in the range of 0 to
255. (The notebook's figure of it is left out here.)

Scale these values to a range of 0 to 1 before feeding them to the neural network
model. To do so, divide the values by 255. It's important that the *training set* and
the *testing set* be preprocessed in the same way:
"""

train_images = train_images / 255.0

test_images = test_images / 255.0

"""
To verify that the data is in the correct format and that you're ready to build and
train the network, the notebook displays the first 25 images from the *training set*
with the class name below each image (left out here).

## Build the model

Building the neural network requires configuring the layers of the model, then
compiling the model.

### Set up the layers

The basic building block of a neural network is the *layer*. Layers extract
representations from the data fed into them. Hopefully, these representations are
meaningful for the problem at hand.

Most of deep learning consists of chaining together simple layers. Most layers, such as
`tf.keras.layers.Dense`, have parameters that are learned during training.
"""

model = keras.Sequential([
    keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(128, activation='relu'),
    keras.layers.Dense(10)
])

"""
The first layer in this network, `tf.keras.layers.Flatten`, transforms the format of
the images from a two-dimensional array (of 28 by 28 pixels) to a one-dimensional array
(of 28 * 28 = 784 pixels). Think of this layer as unstacking rows of pixels in the image
and lining them up. This layer has no parameters to learn; it only reformats the data.

After the pixels are flattened, the network consists of a sequence of two
`tf.keras.layers.Dense` layers. These are densely connected, or fully connected, neural
layers. The first `Dense` layer has 128 nodes (or neurons). The second (and last) layer
returns a logits array with length of 10. Each node contains a score that indicates the
current image belongs to one of the 10 classes.

### Compile the model

Before the model is ready for training, it needs a few more settings. These are added
during the model's *compile* step:

* *Optimizer* —This is how the model is updated based on the data it sees and its loss
  function.
* *Loss function* —This measures how accurate the model is during training. You want to
  minimize this function to "steer" the model in the right direction.
* *Metrics* —Used to monitor the training and testing steps. The following example uses
  *accuracy*, the fraction of the images that are correctly classified.
"""

model.compile(optimizer='adam',
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])

"""
## Train the model

Training the neural network model requires the following steps:

1. Feed the training data to the model. In this example, the training data is in the
   `train_images` and `train_labels` arrays.
2. The model learns to associate images and labels.
3. You ask the model to make predictions about a test set—in this example, the
   `test_images` array.
4. Verify that the predictions match the labels from the `test_labels` array.

### Feed the model

To start training, call the `model.fit` method—so called because it "fits" the model
to the training data:
"""

model.fit(train_images, train_labels, epochs=10)

"""
As the model trains, the loss and accuracy metrics are displayed. This model reaches an
accuracy of about 0.91 (or 91%) on the training data.

### Evaluate accuracy

Next, compare how the model performs on the test dataset:
"""

test_loss, test_acc = model.evaluate(test_images,  test_labels, verbose=2)

print('\nTest accuracy:', test_acc)

"""
It turns out that the accuracy on the test dataset is a little less than the accuracy
on the training dataset. This gap between training accuracy and test accuracy
represents *overfitting*. Overfitting happens when a machine learning model performs
worse on new, previously unseen inputs than it does on the training data. An overfitted
model "memorizes" the noise and details in the training dataset to a point where it
negatively impacts the performance of the model on the new data.

### Make predictions

With the model trained, you can use it to make predictions about some images. Attach a
softmax layer to convert the model's linear outputs—logits—to probabilities, which
should be easier to interpret.
"""

probability_model = keras.Sequential([model,
                                         keras.layers.Softmax()])

predictions = probability_model.predict(test_images)

"""
Here, the model has predicted the label for each image in the testing set. Let's take a
look at the first prediction:
"""

predictions[0]

"""
A prediction is an array of 10 numbers. They represent the model's "confidence" that
the image corresponds to each of the 10 different articles of clothing. You can see
which label has the highest confidence value:
"""

np.argmax(predictions[0])

"""
So, the model is most confident that this image is an ankle boot, or `class_names[9]`.
Examining the test label shows that this classification is correct:
"""

test_labels[0]

"""
The notebook then defines `plot_image` and `plot_value_array` and graphs the full set of
10 class predictions for several images (left out here).

## Use the trained model

Finally, use the trained model to make a prediction about a single image.
"""

# Grab an image from the test dataset.
img = test_images[1]

print(img.shape)

"""
`tf.keras` models are optimized to make predictions on a *batch*, or collection, of
examples at once. Accordingly, even though you're using a single image, you need to add
it to a list:
"""

# Add the image to a batch where it's the only member.
img = (np.expand_dims(img,0))

print(img.shape)

"""
Now predict the correct label for this image:
"""

predictions_single = probability_model.predict(img)

print(predictions_single)

"""
`tf.keras.Model.predict` returns a list of lists—one list for each image in the batch
of data. Grab the predictions for our (only) image in the batch (the notebook plots
them with `plot_value_array`, left out here):
"""

np.argmax(predictions_single[0])

"""
And the model predicts a label as expected.
"""
