'''The Keras blog's "Building powerful image classification models using very little data"
(F. Chollet, 2016; its Keras 2 script 1, the small convnet trained from scratch), with
`keras` changed to `minicnn` in the imports and nothing else. Additions of this
transcription, as the issue asks: SGD(lr=..., decay=...) as the optimizer, the LossHistory
callback of Keras's callbacks guide, the plots of history['acc'] and the whole-model save.
The sizes at the top are tiny for a test (the tutorial's in the comments).
'''
import matplotlib.pyplot as plt

import minicnn
from minicnn.preprocessing.image import ImageDataGenerator
from minicnn.models import Sequential
from minicnn.layers import Conv2D, MaxPooling2D
from minicnn.layers import Activation, Dropout, Flatten, Dense
from minicnn.optimizers import SGD
from minicnn import backend as K


# dimensions of our images.
img_width, img_height = 150, 150

train_data_dir = 'data/train'
validation_data_dir = 'data/validation'
nb_train_samples = 8           # 2000
nb_validation_samples = 4      # 800
epochs = 2                     # 50
batch_size = 2                 # 16

if K.image_data_format() == 'channels_first':
    input_shape = (3, img_width, img_height)
else:
    input_shape = (img_width, img_height, 3)

model = Sequential()
model.add(Conv2D(32, (3, 3), input_shape=input_shape))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))

model.add(Conv2D(32, (3, 3)))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))

model.add(Conv2D(64, (3, 3)))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))

model.add(Flatten())
model.add(Dense(64))
model.add(Activation('relu'))
model.add(Dropout(0.5))
model.add(Dense(1))
model.add(Activation('sigmoid'))

model.compile(loss='binary_crossentropy',
              optimizer=SGD(lr=1e-4, decay=1e-6, momentum=0.9),
              metrics=['accuracy'])


class LossHistory(minicnn.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.losses = []

    def on_batch_end(self, batch, logs={}):
        self.losses.append(logs.get('loss'))


# this is the augmentation configuration we will use for training
train_datagen = ImageDataGenerator(
    rescale=1. / 255,
    shear_range=0.2,
    zoom_range=0.2,
    horizontal_flip=True)

# this is the augmentation configuration we will use for testing:
# only rescaling
test_datagen = ImageDataGenerator(rescale=1. / 255)

train_generator = train_datagen.flow_from_directory(
    train_data_dir,
    target_size=(img_width, img_height),
    batch_size=batch_size,
    class_mode='binary')

validation_generator = test_datagen.flow_from_directory(
    validation_data_dir,
    target_size=(img_width, img_height),
    batch_size=batch_size,
    class_mode='binary')

history = LossHistory()
fit = model.fit_generator(
    train_generator,
    steps_per_epoch=nb_train_samples // batch_size,
    epochs=epochs,
    validation_data=validation_generator,
    validation_steps=nb_validation_samples // batch_size,
    callbacks=[history])

print(model.output_shape)
print(len(history.losses), 'batch losses')

plt.plot(fit.history['acc'])
plt.plot(fit.history['val_acc'])
plt.title('model accuracy')
plt.ylabel('accuracy')
plt.xlabel('epoch')
plt.legend(['train', 'validation'], loc='upper left')
plt.savefig('accuracy.png')

plt.figure()
plt.plot(history.losses)
plt.title('loss per batch')
plt.savefig('batch_losses.png')

model.save_weights('first_try.h5')
model.save('first_try_model.h5')
